// Package satellite is the device client's logic, after the seed's
// mycroft_client: Chat, a terminal client of the gateway (type an utterance,
// hear the answer), and Forwarder, which runs beside a device's own assistant,
// lets it answer first and asks the gateway only when it fails.
//
// The bridge cannot tag the device's utterances (they are not its own), so
// it follows each one on the local bus by its session and order (see
// tracker) and logs its decisions with the seed's words: "Waiting for intent
// handling before asking server", "Intent failure detected, ending wait",
// "Asking server for answer", "intent handled internally", "Not asking
// server". It re-emits only speak and the audio service's messages
// (Reemitted). What it re-emits carries the source "satellite" and the context
// member satellite_reemitted, and is never forwarded: no loops.
package satellite
