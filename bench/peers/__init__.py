"""The peer servers the bench compares against; each is a small app written for the bench."""
