"""Local development stack helpers (emulators used by tests and the dev stack)."""
