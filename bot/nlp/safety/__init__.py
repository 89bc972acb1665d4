"""The safety net: spots messages from someone who may not be safe (see knowledge/safety_net.yml)."""
