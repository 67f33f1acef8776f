// Package pulumimock is what the unit tests need to run the program and its component under
// Pulumi's mocks: a recorder that answers like the providers and keeps every resource with
// its inputs, dependencies and options, the resource types, and stack config read from the
// project's Pulumi.yaml as the CLI hands it over.
package pulumimock
