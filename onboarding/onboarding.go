// Package onboarding brings identities onto a registry and takes agents off
// it. Creating one touches two databases and the workflow engine, so each
// creation is a small saga kept whole here:
//
//   - a developer: open the wallet on the TEG, then commit the developer;
//   - an agent: open its TEG account, lock its reputation bond from the
//     developer wallet, start the bond's BondMaturation workflow, then
//     commit the agent; a failed step undoes the bond (compensation below);
//   - a deregistration: commit it, then tell the bond workflow, which
//     forfeits the bond.
//
// Accounts are opened before the registry commits, outside its
// transaction: a crash leaves at most an empty account, never an identity
// without one. The bond is locked before the agent commits for the same
// reason, and is voided again when the agent does not commit; if the void
// itself is lost (a crash), the bond workflow finds no agent on its first
// check and voids the bond with the same key.
//
// HTTP handlers decode, authorise and call a Service; the node wires it.
package onboarding

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/registry"
	"github.com/theprotocol-dev/theprotocol/worker"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// Ledger is the TEG as onboarding uses it. *ledgerstore.Store implements
// it. Every method is idempotent: OpenAccount on the account ID (an
// existing account of the same kind is success), the bond moves on their
// keys.
type Ledger interface {
	OpenAccount(ctx context.Context, id string, kind ledger.Kind) (ledgerstore.Account, bool, error)
	// LockBond moves the bond from the developer wallet to the agent's
	// locked_bond bucket; InsufficientFunds when the wallet is short
	// (nothing moved).
	LockBond(ctx context.Context, agentDID, devAccount string, amountUnits int64, key string) (ledgerstore.BondMove, error)
	// VoidBond moves it back to the wallet.
	VoidBond(ctx context.Context, agentDID, devAccount string, amountUnits int64, key string) (ledgerstore.BondMove, error)
}

// Bond is the reputation bond every agent locks at creation and the
// maturity criteria its BondMaturation workflow applies.
type Bond struct {
	Units    int64               // taken from the developer wallet (registry.DefaultBondUnits)
	Maturity config.BondSettings // handed to each agent's workflow
	// Temporal starts, ends and signals the workflows on TaskQueue.
	Temporal  client.Client
	TaskQueue string
}

// Service runs the onboarding sagas. Registry is required; the rest is
// optional as documented.
type Service struct {
	Registry *registrystore.Store
	// Ledger opens the TEG accounts. Nil: identities get no account and
	// agents no bond (a registry without a TEG; tests).
	Ledger Ledger
	// Bond is taken from every new agent when set (it needs Ledger).
	Bond *Bond
	Now  func() time.Time // default time.Now
	Log  *slog.Logger     // default: discard
}

// compensationTimeout bounds an undo step. It runs on a context detached
// from the caller's: a client that hung up must not leave a bond locked.
const compensationTimeout = 10 * time.Second

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// SignedUp is a new developer with its API key, shown once.
type SignedUp struct {
	Developer registry.Developer
	APIKey    auth.APIKey
}

// SignUpDeveloper creates a developer and its wallet. The wallet is opened
// first; a ledger failure creates nothing (Unavailable unless the ledger
// chose a code).
func (s *Service) SignUpDeveloper(ctx context.Context, name, email string) (SignedUp, error) {
	id := uuid.New()
	if s.Ledger != nil {
		if _, _, err := s.Ledger.OpenAccount(ctx, registry.DeveloperSubject(id), ledger.KindDeveloper); err != nil {
			return SignedUp{}, ledgerErr(err)
		}
	}
	key := auth.NewAPIKey()
	dev, err := s.Registry.CreateDeveloper(ctx, registrystore.NewDeveloper{ID: id, Name: name, Email: email, APIKeyID: key.ID, APIKeyHash: key.Hash}, s.now())
	if err != nil {
		return SignedUp{}, err
	}
	return SignedUp{Developer: dev, APIKey: key}, nil
}

// CreatedAgent is a new agent with its client credentials (the secret is
// shown once) and its initial card, if any.
type CreatedAgent struct {
	Agent        registry.Agent
	Card         *registry.PublishedCard
	ClientID     string
	ClientSecret string
}

// CreateAgent creates an agent with the bootstrap token whose hash is
// given, and card as its initial card (optional, already validated).
//
// Errors: the bootstrap token's (Unauthenticated when it is invalid,
// expired or used: checked first, so a dead token opens no account); the
// ledger's (InsufficientFunds: the wallet is short of the bond; any error
// without a code is Unavailable, as every step is idempotent and the
// client may retry); Unavailable when the bond workflow cannot be started;
// the registry's when the agent does not commit (the bond is then voided).
func (s *Service) CreateAgent(ctx context.Context, bootstrapHash []byte, card *registry.AgentCard) (CreatedAgent, error) {
	bt, err := s.Registry.PeekBootstrapToken(ctx, bootstrapHash, s.now())
	if err != nil {
		return CreatedAgent{}, err
	}
	did := registry.NewDID()
	if s.Ledger != nil {
		if _, _, err := s.Ledger.OpenAccount(ctx, did, ledger.KindAgent); err != nil {
			return CreatedAgent{}, ledgerErr(err)
		}
	}
	bonded := false
	if s.Ledger != nil && s.Bond != nil {
		if err := s.lockBond(ctx, did, registry.DeveloperSubject(bt.DeveloperID)); err != nil {
			return CreatedAgent{}, err
		}
		bonded = true
	}
	clientID := auth.NewHandle(auth.PrefixClientID)
	secret, secretHash := auth.NewSecret(auth.PrefixClientSecret)
	agent, published, err := s.Registry.CreateAgent(ctx, registrystore.NewAgent{
		DID: did, BootstrapTokenHash: bootstrapHash, ClientID: clientID, ClientSecretHash: secretHash, Card: card,
	}, s.now())
	if err != nil {
		if bonded {
			s.undoBond(ctx, did, registry.DeveloperSubject(bt.DeveloperID))
		}
		return CreatedAgent{}, err
	}
	return CreatedAgent{Agent: agent, Card: published, ClientID: clientID, ClientSecret: secret}, nil
}

// Bond idempotency keys derive from the DID: a retried step finds its
// earlier move, and the bond workflow voids with the same key.
func bondLockKey(did string) string { return "bond-lock-" + did }
func bondVoidKey(did string) string { return "bond-void-" + did }

// lockBond locks the bond, then starts the agent's BondMaturation
// workflow. If the workflow cannot be started the bond is voided again.
func (s *Service) lockBond(ctx context.Context, did, devAccount string) error {
	if _, err := s.Ledger.LockBond(ctx, did, devAccount, s.Bond.Units, bondLockKey(did)); err != nil {
		return ledgerErr(err)
	}
	if err := s.startBondWorkflow(ctx, did, devAccount); err != nil {
		vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), compensationTimeout)
		defer cancel()
		if _, verr := s.Ledger.VoidBond(vctx, did, devAccount, s.Bond.Units, bondVoidKey(did)); verr != nil {
			// The bond stays locked for an agent that is never created;
			// an operator must void it (bond-void-<did>).
			s.log().Error("reputation bond locked but neither the workflow started nor the bond voided",
				"did", did, "start_error", err, "void_error", verr)
		}
		return apperr.Wrap(err, apperr.Unavailable, "the bond workflow could not be started; retry later")
	}
	return nil
}

// startBondWorkflow starts bond-<did>. One bond per agent, ever: a
// finished bond is never restarted, and a retried start of a running one
// returns it (both count as started).
func (s *Service) startBondWorkflow(ctx context.Context, did, devAccount string) error {
	b, m := s.Bond, s.Bond.Maturity
	return worker.StartOnce(ctx, b.Temporal, b.TaskQueue, workflows.BondWorkflowID(did), workflows.BondWorkflowName, workflows.BondInput{
		AgentDID: did, DeveloperAccount: devAccount, AmountUnits: b.Units,
		MinAge: m.MinAge, MinTransfers: m.MinTransfers, MinTrust: m.MinTrust, RecheckEvery: m.RecheckEvery,
	})
}

// undoBond compensates a locked bond whose agent did not commit: the bond
// goes back to the wallet, then the workflow, with nothing left to do, is
// terminated. Best effort: if the ledger move fails the workflow is left
// running, and its first check finds the agent missing and voids the bond
// with the same key.
func (s *Service) undoBond(ctx context.Context, did, devAccount string) {
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), compensationTimeout)
	defer cancel()
	if _, err := s.Ledger.VoidBond(vctx, did, devAccount, s.Bond.Units, bondVoidKey(did)); err != nil {
		s.log().Warn("void reputation bond after failed agent creation", "did", did, "error", err)
		return
	}
	err := s.Bond.Temporal.TerminateWorkflow(vctx, workflows.BondWorkflowID(did), "", "agent creation failed; bond voided")
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		s.log().Warn("terminate bond workflow after void", "did", did, "error", err)
	}
}

// DeregisterAgent deregisters the agent (by names who did it) and then
// tells its bond workflow, which forfeits the bond. The notice is best
// effort: the workflow also sees the deregistration on its next check.
// Authorisation is the caller's.
func (s *Service) DeregisterAgent(ctx context.Context, did, by string) (registry.Agent, error) {
	a, err := s.Registry.DeregisterAgent(ctx, did, by, s.now())
	if err != nil {
		return a, err
	}
	if s.Ledger != nil && s.Bond != nil {
		err := s.Bond.Temporal.SignalWorkflow(ctx, workflows.BondWorkflowID(did), "", workflows.SignalBondDeregistered, nil)
		var nf *serviceerror.NotFound
		// No workflow: an agent created before bonds existed, or whose bond
		// already matured.
		if err != nil && !errors.As(err, &nf) {
			s.log().Warn("notify bond workflow of deregistration", "did", did, "error", err)
		}
	}
	return a, nil
}

// ledgerErr keeps the ledger's apperr codes (InsufficientFunds for a short
// wallet) and turns anything else into Unavailable: the steps are
// idempotent, so the client may retry.
func ledgerErr(err error) error {
	return apperr.WrapUncoded(err, apperr.Unavailable, "the ledger is unavailable; retry later")
}
