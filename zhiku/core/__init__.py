"""Foundation: errors and settings every layer may import; imports nothing else of zhiku."""
