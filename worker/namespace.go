package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/theprotocol-dev/theprotocol/workflows"
)

// searchAttributes are the custom search attributes every family declares,
// by name, so operators can filter workflows in the Temporal UI (e.g.
// `SagaState='CompensationFailed'`).
func searchAttributes() map[string]enumspb.IndexedValueType {
	attrs := map[string]enumspb.IndexedValueType{}
	for _, k := range workflows.SearchAttributeKeys() {
		attrs[k.GetName()] = k.GetValueType()
	}
	return attrs
}

// EnsureNamespace registers namespace (retention 72 h) and the custom search
// attributes on it; both steps are no-ops when already done. Used against
// external Temporal clusters; the embedded dev server is started with them.
func EnsureNamespace(ctx context.Context, hostPort, namespace string) error {
	return EnsureNamespaceWith(ctx, client.Options{HostPort: hostPort}, namespace)
}

// EnsureNamespaceWith is EnsureNamespace over a connection described by opts
// (address, TLS, credentials); its namespace and logger are set here.
func EnsureNamespaceWith(ctx context.Context, opts client.Options, namespace string) error {
	opts.Namespace = ""
	opts.Logger = tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        namespace,
		WorkflowExecutionRetentionPeriod: durationpb.New(72 * time.Hour),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register namespace %s: %w", namespace, err)
	}
	attrs := searchAttributes()
	// A freshly registered namespace can take a moment to be visible to the
	// operator service; retry briefly.
	var lastErr error
	for i := 0; i < 20; i++ {
		_, lastErr = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: namespace, SearchAttributes: attrs,
		})
		var already *serviceerror.AlreadyExists
		if lastErr == nil || errors.As(lastErr, &already) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("search attributes on %s: %w", namespace, lastErr)
}

// EnsureSearchAttributes adds the custom search attributes to namespace
// when missing (a Temporal started by an older build lacks the newer
// ones). Attributes that already exist are left alone.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range searchAttributes() {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var already *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &already) {
		return fmt.Errorf("add search attributes to %s: %w", namespace, err)
	}
	return nil
}
