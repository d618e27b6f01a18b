"""nero-ns in ns-viewer: panels the methods add to nerfstudio's viewer (relighting, convergence, exports)."""
