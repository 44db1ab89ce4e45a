"""Edge and branch tests of ComBat harmonisation that kill the mutants the main tests let
survive (issue 20)."""
