// Package gateway holds what belongs to the project as a whole: the OpenAPI
// document of the HTTP API, embedded so that the server serves exactly the
// file the tests check.
package gateway

import _ "embed"

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the HTTP API (a copy).
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }
