package registrystore

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore/internal/registrydb"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// OrganisationPayload is the payload of OrganisationCreated.
type OrganisationPayload struct {
	OrganisationID uuid.UUID `json:"organisation_id"`
	Name           string    `json:"name"`
	CreatedBy      uuid.UUID `json:"created_by"`
}

// MemberPayload is the payload of the membership events.
type MemberPayload struct {
	OrganisationID uuid.UUID `json:"organisation_id"`
	DeveloperID    uuid.UUID `json:"developer_id"`
	Role           string    `json:"role"`
	By             uuid.UUID `json:"by"`
}

// CreateOrganisation creates an organisation with creator as its accepted
// owner, with OrganisationCreated. A taken name is Conflict.
func (s *Store) CreateOrganisation(ctx context.Context, id uuid.UUID, name string, creator uuid.UUID, now time.Time) (registry.Organisation, error) {
	var out registry.Organisation
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.OrganisationInsert(ctx, tx, registrydb.OrganisationInsertParams{ID: id, Name: name, CreatedBy: creator, Now: now})
		if err != nil {
			if db.SQLState(err) == db.SQLStateUnique {
				return apperr.New(apperr.Conflict, "an organisation with this name already exists")
			}
			if db.SQLState(err) == db.SQLStateForeignKey {
				return apperr.New(apperr.NotFound, "developer not found")
			}
			return err
		}
		if _, err := s.q.OrganisationMemberInsert(ctx, tx, registrydb.OrganisationMemberInsertParams{
			ID: uuid.New(), OrganisationID: id, DeveloperID: creator, Role: registry.RoleOwner, InvitedBy: creator, Now: now, AcceptedAt: &now,
		}); err != nil {
			return err
		}
		out = orgFromRow(row)
		return s.emit(ctx, tx, registry.EventOrganisationCreated, "organisation-created-"+id.String(), "org:"+id.String(), now,
			OrganisationPayload{OrganisationID: id, Name: name, CreatedBy: creator})
	})
	return out, dbErr(err, "create organisation")
}

// Organisation returns an organisation (NotFound if none).
func (s *Store) Organisation(ctx context.Context, id uuid.UUID) (registry.Organisation, error) {
	row, err := s.q.OrganisationGet(ctx, s.Pool, id)
	if err != nil {
		return registry.Organisation{}, db.NotFound(err, "organisation not found")
	}
	return orgFromRow(row), nil
}

// Member returns devID's membership or invitation in org (NotFound if none).
func (s *Store) Member(ctx context.Context, org, devID uuid.UUID) (registry.Member, error) {
	row, err := s.q.OrganisationMemberGet(ctx, s.Pool, registrydb.OrganisationMemberGetParams{OrganisationID: org, DeveloperID: devID})
	if err != nil {
		return registry.Member{}, db.NotFound(err, "membership not found")
	}
	return memberFromRow(row), nil
}

// Members lists up to registry.MaxOrgMembers members and invitations.
func (s *Store) Members(ctx context.Context, org uuid.UUID) ([]registry.Member, error) {
	rows, err := s.q.OrganisationMemberList(ctx, s.Pool, registrydb.OrganisationMemberListParams{OrganisationID: org, MaxRows: registry.MaxOrgMembers})
	if err != nil {
		return nil, err
	}
	out := make([]registry.Member, 0, len(rows))
	for _, r := range rows {
		out = append(out, memberFromRow(r))
	}
	return out, nil
}

// InviteMember records a pending invitation of devID to org with role, by
// an accepted owner (else Forbidden), with OrganisationMemberInvited.
// Conflict if devID is already a member or invited; NotFound for an unknown
// developer; FailedPrecondition when the organisation is full.
func (s *Store) InviteMember(ctx context.Context, org, devID uuid.UUID, role string, by uuid.UUID, now time.Time) (registry.Member, error) {
	var out registry.Member
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := s.q.OrganisationOwnerCountForUpdate(ctx, tx, org); err != nil {
			return db.NotFound(err, "organisation not found")
		}
		if err := s.requireOwner(ctx, tx, org, by); err != nil {
			return err
		}
		n, err := s.q.OrganisationMemberCount(ctx, tx, org)
		if err != nil {
			return err
		}
		if n >= registry.MaxOrgMembers {
			return apperr.New(apperr.FailedPrecondition, "organisation has the maximum of %d members", registry.MaxOrgMembers)
		}
		row, err := s.q.OrganisationMemberInsert(ctx, tx, registrydb.OrganisationMemberInsertParams{
			ID: uuid.New(), OrganisationID: org, DeveloperID: devID, Role: role, InvitedBy: by, Now: now,
		})
		if err != nil {
			switch db.SQLState(err) {
			case db.SQLStateUnique:
				return apperr.New(apperr.Conflict, "developer is already a member or invited")
			case db.SQLStateForeignKey:
				return apperr.New(apperr.NotFound, "developer not found")
			}
			return err
		}
		out = memberFromRow(row)
		return s.emit(ctx, tx, registry.EventOrganisationMemberInvited, "organisation-member-invited-"+row.ID.String(), "org:"+org.String(), now,
			MemberPayload{OrganisationID: org, DeveloperID: devID, Role: role, By: by})
	})
	return out, dbErr(err, "invite member")
}

// AcceptInvitation makes devID's pending invitation to org a membership,
// with OrganisationMemberJoined. NotFound when there is no pending
// invitation.
func (s *Store) AcceptInvitation(ctx context.Context, org, devID uuid.UUID, now time.Time) (registry.Member, error) {
	var out registry.Member
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.OrganisationMemberAccept(ctx, tx, registrydb.OrganisationMemberAcceptParams{OrganisationID: org, DeveloperID: devID, Now: now})
		if err != nil {
			return db.NotFound(err, "no pending invitation to this organisation")
		}
		out = memberFromRow(row)
		return s.emit(ctx, tx, registry.EventOrganisationMemberJoined, "organisation-member-joined-"+row.ID.String(), "org:"+org.String(), now,
			MemberPayload{OrganisationID: org, DeveloperID: devID, Role: row.Role, By: devID})
	})
	return out, dbErr(err, "accept invitation")
}

// RemoveMember removes devID (member or invitation) from org, by an owner or
// by devID itself (else Forbidden), with OrganisationMemberRemoved. The last
// accepted owner cannot be removed (FailedPrecondition); the organisation
// row lock serialises concurrent removals so that check holds.
func (s *Store) RemoveMember(ctx context.Context, org, devID, by uuid.UUID, now time.Time) (registry.Member, error) {
	var out registry.Member
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		owners, err := s.q.OrganisationOwnerCountForUpdate(ctx, tx, org)
		if err != nil {
			return db.NotFound(err, "organisation not found")
		}
		if by != devID {
			if err := s.requireOwner(ctx, tx, org, by); err != nil {
				return err
			}
		}
		m, err := s.q.OrganisationMemberGet(ctx, tx, registrydb.OrganisationMemberGetParams{OrganisationID: org, DeveloperID: devID})
		if err != nil {
			return db.NotFound(err, "membership not found")
		}
		if m.Role == registry.RoleOwner && m.AcceptedAt != nil && owners <= 1 {
			return apperr.New(apperr.FailedPrecondition, "cannot remove the last owner of an organisation")
		}
		row, err := s.q.OrganisationMemberDelete(ctx, tx, registrydb.OrganisationMemberDeleteParams{OrganisationID: org, DeveloperID: devID})
		if err != nil {
			return db.NotFound(err, "membership not found")
		}
		out = memberFromRow(row)
		return s.emit(ctx, tx, registry.EventOrganisationMemberRemoved, "organisation-member-removed-"+row.ID.String(), "org:"+org.String(), now,
			MemberPayload{OrganisationID: org, DeveloperID: devID, Role: row.Role, By: by})
	})
	return out, dbErr(err, "remove member")
}

func (s *Store) requireMember(ctx context.Context, tx pgx.Tx, org, devID uuid.UUID) error {
	m, err := s.q.OrganisationMemberGet(ctx, tx, registrydb.OrganisationMemberGetParams{OrganisationID: org, DeveloperID: devID})
	if db.IsNotFound(err) || (err == nil && m.AcceptedAt == nil) {
		return apperr.New(apperr.Forbidden, "you are not a member of this organisation")
	}
	return err
}

func (s *Store) requireOwner(ctx context.Context, tx pgx.Tx, org, devID uuid.UUID) error {
	m, err := s.q.OrganisationMemberGet(ctx, tx, registrydb.OrganisationMemberGetParams{OrganisationID: org, DeveloperID: devID})
	if db.IsNotFound(err) || (err == nil && (m.AcceptedAt == nil || m.Role != registry.RoleOwner)) {
		return apperr.New(apperr.Forbidden, "only an owner of the organisation may do this")
	}
	return err
}

func orgFromRow(r registrydb.Organisation) registry.Organisation {
	return registry.Organisation{ID: r.ID, Name: r.Name, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt}
}

func memberFromRow(r registrydb.OrganisationMember) registry.Member {
	return registry.Member{ID: r.ID, OrganisationID: r.OrganisationID, DeveloperID: r.DeveloperID, Role: r.Role, InvitedBy: r.InvitedBy, InvitedAt: r.InvitedAt, AcceptedAt: r.AcceptedAt}
}
