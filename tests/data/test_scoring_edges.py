"""Edge and branch tests that kill the mutants the main tests let survive (issue 20)."""
