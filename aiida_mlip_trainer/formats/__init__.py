"""pacemaker's file formats: the input.yaml writer and the readers of its log and metrics (no AiiDA)."""
