"""Client requests: something a client asked for, from opening to resolution."""
