"""What a run stands on: settings, workspace, transports, task runners, metrics, renderer choice."""
