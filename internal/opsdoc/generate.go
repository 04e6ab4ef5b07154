package opsdoc

//go:generate go run ./gen -root ../.. -out ../../docs/operations.md
