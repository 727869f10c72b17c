package api

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// ExactNames checks that every member of the JSON document data that would
// land in a struct field of v names that field exactly. encoding/json also
// accepts a name in any case ("UTTERANCE" for "utterance"), and with
// duplicates the last wins, so {"utterance":"hi","UTTERANCE":"..."} would
// say something other than what a reader of the body sees; the API
// documents its names as written, and the assistant's Python peers read
// them so too. Members of maps and of values that decode themselves are not
// checked (the values of maps are). A member that names no field, or a field only when folded, is an
// error naming it. data must be valid JSON: ExactNames is meant to run once
// encoding/json has decoded it.
func ExactNames(data []byte, v any) error {
	return checkNames(data, v, false)
}

// NoFoldedNames is ExactNames for bodies that may carry members nobody
// knows (other APIs' dialects, whose clients send more than the gateway
// reads): those pass, but a member that names a field only when folded
// ("MESSAGES" beside "messages") is still an error, since encoding/json
// would take it for the field where the API it speaks would not.
func NoFoldedNames(data []byte, v any) error {
	return checkNames(data, v, true)
}

func checkNames(data []byte, v any, unknownOK bool) error {
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	return exactNames(doc, reflect.TypeOf(v), unknownOK)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func exactNames(doc any, t reflect.Type, unknownOK bool) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil
	}
	switch d := doc.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Map: // its names are its own; its values may be structs
			for _, e := range d {
				if err := exactNames(e, t.Elem(), unknownOK); err != nil {
					return err
				}
			}
			return nil
		case reflect.Struct:
		default:
			return nil
		}
		fields := fieldsOf(t)
		names := make([]string, 0, len(d))
		for name := range d {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			ft, ok := fields[name]
			if !ok {
				if unknownOK && !foldsToField(name, fields) {
					continue
				}
				return &NameError{Name: name}
			}
			if err := exactNames(d[name], ft, unknownOK); err != nil {
				return err
			}
		}
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return nil
		}
		for _, e := range d {
			if err := exactNames(e, t.Elem(), unknownOK); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldsOf maps the JSON names of t's fields, as encoding/json names them
// (tag name, else the Go name; embedded structs without a name are
// flattened), to their types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, typ := range fieldsOf(ft) {
					if _, ok := fields[n]; !ok {
						fields[n] = typ
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = ft
	}
	return fields
}

// foldsToField says whether name names one of fields when case is folded,
// as encoding/json matches them.
func foldsToField(name string, fields map[string]reflect.Type) bool {
	for f := range fields {
		if strings.EqualFold(f, name) {
			return true
		}
	}
	return false
}

// NameError is a JSON member that names no field exactly.
type NameError struct{ Name string }

// Error implements the error interface.
func (e *NameError) Error() string { return fmt.Sprintf("unknown member %q", e.Name) }
