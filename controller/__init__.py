"""Fleet controller: registry, liveness, telemetry, alarms, config, commands, console."""
