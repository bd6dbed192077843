"""batch_emulator."""
