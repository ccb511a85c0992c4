"""The reference trainers: presets, models, the compiled step, run directories, exports."""
