// Implementation lands with its issue; see ARCHITECTURE.md.
export {};
