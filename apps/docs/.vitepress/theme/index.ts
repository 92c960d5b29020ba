// The default VitePress theme plus the live demos, registered as global components so any page
// can place them: <KvCalculator />, <AttentionVisualiser />, <ModelDemo />, <ModelKvTable />, <PresetKvTable preset="…" />.
import type { Theme } from 'vitepress';
import DefaultTheme from 'vitepress/theme';
import AttentionVisualiser from './components/AttentionVisualiser.vue';
import KvCalculator from './components/KvCalculator.vue';
import ModelDemo from './components/ModelDemo.vue';
import ModelKvTable from './components/ModelKvTable.vue';
import PresetKvTable from './components/PresetKvTable.vue';
import './custom.css';

const theme: Theme = {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('KvCalculator', KvCalculator);
    app.component('AttentionVisualiser', AttentionVisualiser);
    app.component('ModelDemo', ModelDemo);
    app.component('ModelKvTable', ModelKvTable);
    app.component('PresetKvTable', PresetKvTable);
  },
};

export default theme;
