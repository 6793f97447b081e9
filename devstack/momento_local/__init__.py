"""A small local Momento cache server speaking the real gRPC wire protocol."""
