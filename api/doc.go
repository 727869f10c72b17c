// Package api is the gateway's vocabulary: the wire types that mirror
// openapi.yaml, the messagebus envelope, the Server-Sent-Events event types and
// the error type. It imports nothing else of this module, so every other
// package may import it.
package api
