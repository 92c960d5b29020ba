import { attnkitConfig } from '@attnkit/eslint-config';

export default attnkitConfig({ tsconfigRootDir: import.meta.dirname });
