"""The operations the CLI and the console both call: each change is recorded in the message log, naming the operator."""
