"""The demo's world built from code: its tasks, its oracle judge and its tiny models."""
