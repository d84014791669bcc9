package workflows

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"
)

var workflowContextType = reflect.TypeOf((*workflow.Context)(nil)).Elem()

// Every schedule starts a workflow its own family registers, with
// arguments of the types that workflow takes: a schedule pointing at
// another family's workflow would start it on nodes that may not run it.
func TestSchedulesTargetAWorkflowOfTheirFamily(t *testing.T) {
	params := ScheduleParams{Registry: "alpha-main", IdempotencyRetention: 48 * time.Hour}
	for _, f := range Families {
		funcs := map[string]any{}
		for _, w := range f.Workflows {
			funcs[w.Name] = w.Func
		}
		for _, s := range f.Schedules {
			fn, ok := funcs[s.Workflow]
			require.True(t, ok, "family %s: schedule %s starts %q, which the family does not register", f.Name, s.IDPrefix, s.Workflow)
			var args []any
			if s.Args != nil {
				args = s.Args(params)
			}
			ft := reflect.TypeOf(fn)
			require.Equal(t, ft.NumIn()-1, len(args), "family %s: schedule %s passes %d arguments to %s", f.Name, s.IDPrefix, len(args), s.Workflow)
			for i, a := range args {
				require.Equal(t, ft.In(i+1), reflect.TypeOf(a), "family %s: schedule %s argument %d", f.Name, s.IDPrefix, i)
			}
		}
	}
}

// A family wrongly declared fails here rather than at a worker's start:
// names, schedule IDs, activity structs and search attributes are each
// claimed by one family only, and every entry has the shape the worker
// relies on.
func TestFamiliesAreWellFormed(t *testing.T) {
	names, workflowNames, schedules, acts, attrs := map[string]bool{}, map[string]string{}, map[string]string{}, map[reflect.Type]string{}, map[string]string{}
	for _, f := range Families {
		require.NotEmpty(t, f.Name)
		require.False(t, names[f.Name], "family %s declared twice", f.Name)
		names[f.Name] = true
		require.NotEmpty(t, f.Workflows, "family %s has no workflow", f.Name)
		require.NotEmpty(t, f.Histories, "family %s names no committed histories", f.Name)
		for _, w := range f.Workflows {
			require.NotEmpty(t, w.Name, "family %s", f.Name)
			other, dup := workflowNames[w.Name]
			require.False(t, dup, "workflow %s registered by %s and %s", w.Name, other, f.Name)
			workflowNames[w.Name] = f.Name
			ft := reflect.TypeOf(w.Func)
			require.True(t, ft != nil && ft.Kind() == reflect.Func && ft.NumIn() >= 1 && ft.In(0) == workflowContextType,
				"family %s: %s is not a workflow function", f.Name, w.Name)
		}
		for _, a := range f.Activities {
			at := reflect.TypeOf(a)
			require.True(t, at != nil && at.Kind() == reflect.Pointer && at.Elem().Kind() == reflect.Struct && reflect.ValueOf(a).IsNil(),
				"family %s: activities are declared as nil struct pointers, got %T", f.Name, a)
			other, dup := acts[at]
			require.False(t, dup, "activity struct %s claimed by %s and %s", at, other, f.Name)
			acts[at] = f.Name
		}
		for _, s := range f.Schedules {
			require.True(t, strings.HasSuffix(s.IDPrefix, "-"), "family %s: schedule ID prefix %q ends with a dash", f.Name, s.IDPrefix)
			other, dup := schedules[s.IDPrefix]
			require.False(t, dup, "schedule %s declared by %s and %s", s.IDPrefix, other, f.Name)
			schedules[s.IDPrefix] = f.Name
			require.NotEmpty(t, s.Cron)
			require.Positive(t, s.CatchupWindow, "schedule %s", s.IDPrefix)
			require.Positive(t, s.Timeout, "schedule %s", s.IDPrefix)
			require.NotEqual(t, enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED, s.Overlap, "schedule %s states its overlap policy", s.IDPrefix)
		}
		for _, k := range f.SearchAttributes {
			other, dup := attrs[k.GetName()]
			require.False(t, dup, "search attribute %s declared by %s and %s", k.GetName(), other, f.Name)
			attrs[k.GetName()] = f.Name
		}
	}
	require.Len(t, SearchAttributeKeys(), len(attrs))
}

// The search attributes existing namespaces hold stay declared with their
// types (the namespace is set up from the declarations; an attribute is
// added, never renamed or retyped).
func TestSearchAttributesAreDeclared(t *testing.T) {
	declared := map[string]enumspb.IndexedValueType{}
	for _, k := range SearchAttributeKeys() {
		declared[k.GetName()] = k.GetValueType()
	}
	for name, typ := range map[string]enumspb.IndexedValueType{
		"AgentDID":       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"SagaState":      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"TransferID":     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"SourceRegistry": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"TargetRegistry": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"TransferIDs":    enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	} {
		got, ok := declared[name]
		require.True(t, ok, "search attribute %s is no longer declared", name)
		require.Equal(t, typ, got, "search attribute %s", name)
	}
}
