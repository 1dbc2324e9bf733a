import getpass

from django.core.management import BaseCommand, CommandError

from outbox import deadletters
from outbox.models import DeadLetter


class Command(BaseCommand):
    help = (
        "List dead letters, show one, retry them (in each aggregate's order), or discard them "
        "(never applied; recorded with who and why)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--group", help="only this consumer group")
        parser.add_argument("--all", action="store_true", help="include resolved dead letters")
        parser.add_argument("--show", type=int, metavar="ID", help="print one dead letter in full")
        parser.add_argument("--retry", type=int, nargs="+", metavar="ID", help="retry these")
        parser.add_argument("--retry-all", action="store_true", help="retry every open dead letter")
        parser.add_argument(
            "--discard", type=int, nargs="+", metavar="ID", help="discard these (needs --reason)"
        )
        parser.add_argument("--reason", help="why they are discarded (recorded)")
        parser.add_argument("--by", help="who discards them (default: the login name)")

    def handle(self, *args, **options) -> None:
        if options["show"] is not None:
            return self._show(options["show"])
        if options["retry"] or options["retry_all"]:
            return self._retry(options)
        if options["discard"]:
            return self._discard(options)
        qs = DeadLetter.objects.order_by("id")
        if not options["all"]:
            qs = qs.filter(status=DeadLetter.Status.DEAD)
        if options["group"]:
            qs = qs.filter(group=options["group"])
        rows = list(qs)
        for letter in rows:
            aggregate = (
                f"{letter.aggregate_type}:{letter.aggregate_id}" if letter.aggregate_id else "-"
            )
            self.stdout.write(
                f"#{letter.pk:<6} {letter.status:<9} {letter.group:<16} {letter.event_type or '-':<32} "
                f"{aggregate:<20} {letter.reason}"
            )
        self.stdout.write(f"{len(rows)} dead letter(s)")

    def _show(self, pk: int) -> None:
        try:
            letter = DeadLetter.objects.get(pk=pk)
        except DeadLetter.DoesNotExist:
            raise CommandError(f"no dead letter #{pk}") from None
        for name in (
            "group",
            "status",
            "event_id",
            "event_type",
            "aggregate_type",
            "aggregate_id",
            "sequence",
            "attempts",
            "reason",
            "error",
            "created_at",
            "resolved_at",
            "discarded_at",
            "discarded_by",
            "discard_reason",
        ):
            self.stdout.write(f"{name:<15} {getattr(letter, name)}")
        self.stdout.write(f"entry           {letter.fields}")
        if letter.traceback:
            self.stdout.write(letter.traceback)

    def _retry(self, options) -> None:
        try:
            if options["retry_all"]:
                outcome = deadletters.retry_all(group=options["group"])
            else:
                _refuse_unknown(options["retry"])
                outcome = deadletters.retry(options["retry"])
        except deadletters.LeaseBusy as exc:
            raise CommandError(f"{exc}; try again in a moment") from None
        for pk in outcome.resolved:
            self.stdout.write(f"#{pk} resolved")
        for pk, error in outcome.failed.items():
            self.stderr.write(f"#{pk} failed again: {error}")
        self.stdout.write(f"{len(outcome.resolved)} resolved, {len(outcome.failed)} failed")
        if outcome.failed:
            raise CommandError(f"{len(outcome.failed)} dead letter(s) failed again")

    def _discard(self, options) -> None:
        reason = (options["reason"] or "").strip()
        if not reason:
            raise CommandError("--discard needs --reason: why they are never to be applied")
        ids = options["discard"]
        _refuse_unknown(ids)
        try:
            outcome = deadletters.discard(ids, by=options["by"] or getpass.getuser(), reason=reason)
        except deadletters.LeaseBusy as exc:
            raise CommandError(f"{exc}; try again in a moment") from None
        for pk in outcome.discarded:
            self.stdout.write(f"#{pk} discarded")
        for pk, why in outcome.skipped.items():
            self.stdout.write(f"#{pk} left as it is: {why}")
        self.stdout.write(f"{len(outcome.discarded)} discarded, {len(outcome.skipped)} left")


def _refuse_unknown(ids: list[int]) -> None:
    """One readable line naming every id that is no dead letter, before anything changes."""
    missing = set(ids) - set(DeadLetter.objects.filter(pk__in=ids).values_list("pk", flat=True))
    if missing:
        raise CommandError(f"no dead letter #{', #'.join(map(str, sorted(missing)))}")
