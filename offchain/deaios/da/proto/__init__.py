"""gRPC API of the disperser (0G's `disperser.Disperser`): the .proto and its generated stubs (`make proto`)."""
