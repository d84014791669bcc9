package ingest

import "github.com/twmb/franz-go/pkg/kgo"

// newKafkaClient is kgo.NewClient with the deployment's extra options (TLS,
// SASL) after the caller's own.
func newKafkaClient(extra []kgo.Opt, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append(opts, extra...)...)
}
