"""The assistant's own Python: launcher, channels, NLU parts."""
