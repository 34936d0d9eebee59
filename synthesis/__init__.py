"""InfTool synthesis: plain Python (no Django) from API specs to verified tool-use trajectories."""
