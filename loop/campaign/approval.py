"""Approval: a person (or auto-approval) accepts, rejects or edits a proposed batch.

The methods of :class:`~nanoloop.loop.campaign.campaign.Campaign` that answer
the approval step (a mixin: they use the campaign's ledger, space and status
events). An answer is validated whole before anything is written.
"""

from __future__ import annotations

from nanoloop.loop.campaign.review import repredicted_edit
from nanoloop.loop.design.space import formulation_id, recipe_json, recipe_of
from nanoloop.loop.errors import InputError
from nanoloop.loop.store.ledger import now_utc
from nanoloop.loop.store.status import Status


class ApprovalSteps:
    """Approving, rejecting and editing a round's proposals (part of :class:`~nanoloop.loop.campaign.campaign.Campaign`)."""

    def awaiting_approval(self, round_: int) -> list[str]:
        """Ids of the round's formulations awaiting a person's approval."""
        return self.formulation_ids(round_, Status.PROPOSED)

    def check_approval(self, round_: int, rejected: dict[str, str] | None = None, edits: dict[str, dict] | None = None) -> dict[str, dict]:
        """Validate an approval answer without writing anything; returns the edited recipes by original id.

        Raises:
            InputError: an id not awaiting approval, an id both rejected and
                edited, or an edit outside the design space.
        """
        rejected, edits = dict(rejected or {}), dict(edits or {})
        waiting = set(self.awaiting_approval(round_))
        unknown = (set(rejected) | set(edits)) - waiting
        if unknown:
            raise InputError(f"round {round_}: {sorted(unknown)} are not awaiting approval")
        both = sorted(set(rejected) & set(edits))
        if both:
            raise InputError(f"round {round_}: {both} are both rejected and edited; reject or edit an id, not both")
        frame = self.formulations().set_index("formulation_id")
        checked = {}
        for fid, changes in edits.items():
            if not isinstance(changes, dict) or not changes:
                raise InputError(f"edit of {fid}: expected {{variable: value}}, got {changes!r}")
            try:
                checked[fid] = self.space.validate({**recipe_of(frame.loc[fid, "parameters_json"]), **changes})
            except InputError as err:
                raise InputError(f"edit of {fid}: {err}") from None
        return checked

    def approve(self, round_: int, rejected: dict[str, str] | None = None, edits: dict[str, dict] | None = None, by: str = "") -> list[str]:
        """Approve the round's proposed batch, except rejected ids (id -> reason); edits replace a proposal.

        The whole answer is validated first (:meth:`check_approval`), so a bad
        answer writes nothing. The original of an edit is kept and marked
        ``edited``; the edited recipe is stored as a new formulation. ``by``
        (who approved) is kept on the approval events. Returns the approved ids.
        """
        rejected = dict(rejected or {})
        edited = self.check_approval(round_, rejected, edits)
        waiting = set(self.awaiting_approval(round_))
        frame = self.formulations().set_index("formulation_id")
        new_ids = []
        for fid, recipe in edited.items():
            row = {**frame.loc[fid].to_dict(), "origin": f"edit-of:{fid}", "created_at": now_utc()}
            row.update(repredicted_edit(self, row, recipe))  # the edit's own prediction, not the original's
            row.update(formulation_id=formulation_id(self.config.name, recipe), parameters_json=recipe_json(recipe))
            new_ids += self.add_proposed([row], round_)
        for fid, reason in rejected.items():
            self.record([fid], Status.REJECTED, round_, reason or "rejected")
        self.record(list(edited), Status.EDITED, round_, "replaced by an edit")
        approved = sorted((waiting - set(rejected) - set(edited)) | set(new_ids))
        self.record(approved, Status.APPROVED, round_, f"approved by {by}" if by else "")
        return approved
