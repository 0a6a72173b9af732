"""Bench data in chatsite's database: users with API keys and empty conversations, and the check after a run.

`create`: for each plan NAME=USERS, that many users (bench-0, bench-1, ... shared between plans) with one
API key each and PER_USER new conversations each; writes bench/out/plan-NAME.json for the load generator.
`verify`: after a run, checks that every chat the load generator sent left exactly its user turn and a
complete answer, and that the conversations it did not use are empty.

Run with chatsite's environment (DATABASE_URL, ...): `python -m bench.chatsite_data create --plans 100=100`.
"""

import argparse
import json
import os
from pathlib import Path


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()


def create(plans: dict[str, int], per_user: int, out_dir: Path) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from accounts.models import ApiKey, User
    from conversations.models import Conversation

    needed = max(plans.values())
    with transaction.atomic():
        existing = {u.username: u for u in User.objects.filter(username__startswith="bench-")}
        missing = [f"bench-{i}" for i in range(needed) if f"bench-{i}" not in existing]
        # No password: the bench authenticates with API keys, and hashing 1,000 passwords takes minutes.
        User.objects.bulk_create(User(username=name, password=make_password(None)) for name in missing)
        users = list(User.objects.filter(username__in=[f"bench-{i}" for i in range(needed)]))
        users.sort(key=lambda u: int(u.username.split("-")[1]))
        keys = [ApiKey.generate(user=user, name="bench")[1] for user in users]

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, count in plans.items():
        with transaction.atomic():
            conversations = Conversation.objects.bulk_create(
                Conversation(owner=user, title=f"bench {name}", source=Conversation.Source.API)
                for user in users[:count]
                for _ in range(per_user)
            )
        plan = {"users": []}
        for index in range(count):
            mine = conversations[index * per_user:(index + 1) * per_user]
            plan["users"].append({"key": keys[index], "conversations": [str(c.pk) for c in mine]})
        (out_dir / f"plan-{name}.json").write_text(json.dumps(plan))


def verify(plan_path: Path, chats_path: Path) -> dict:
    """What the database holds for the conversations of one run, compared with what the client saw."""
    from django.db.models import Count, Q

    from conversations.models import Conversation, Turn

    plan = json.loads(plan_path.read_text())
    chats = json.loads(chats_path.read_text())["chats"]
    planned = [c for user in plan["users"] for c in user["conversations"]]
    sent = {chat["conversation"]: chat for chat in chats}
    counts = {
        str(row["pk"]): row
        for row in Conversation.objects.filter(pk__in=planned).values("pk").annotate(
            users=Count("turns", filter=Q(turns__role=Turn.Role.USER)),
            complete=Count("turns", filter=Q(turns__role=Turn.Role.ASSISTANT, turns__status=Turn.Status.COMPLETE)),
            other=Count("turns", filter=Q(turns__role=Turn.Role.ASSISTANT) & ~Q(turns__status=Turn.Status.COMPLETE)),
            empty=Count("turns", filter=Q(turns__role=Turn.Role.ASSISTANT, turns__content="")),
        )
    }
    stored_complete = sum(1 for cid in sent if counts[cid]["users"] == 1 and counts[cid]["complete"] == 1
                          and counts[cid]["other"] == 0 and counts[cid]["empty"] == 0)
    client_ok = [cid for cid, chat in sent.items() if not chat["error"]]
    client_ok_stored = sum(1 for cid in client_ok if counts[cid]["complete"] == 1 and counts[cid]["users"] == 1)
    unused_touched = sum(1 for cid in planned if cid not in sent and (counts[cid]["users"] or counts[cid]["complete"]))
    return {
        "chats_sent": len(sent),
        "user_turns": sum(counts[cid]["users"] for cid in sent),
        "complete_answers": sum(counts[cid]["complete"] for cid in sent),
        "other_answers": sum(counts[cid]["other"] for cid in sent),
        "chats_stored_complete": stored_complete,
        "client_ok": len(client_ok),
        "client_ok_and_stored": client_ok_stored,
        "unused_conversations_touched": unused_touched,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("create")
    make.add_argument("--plans", nargs="+", required=True, help="NAME=USERS ...")
    make.add_argument("--per-user", type=int, default=6, help="conversations per user and plan")
    make.add_argument("--out-dir", type=Path, default=Path("bench/out"))
    check = commands.add_parser("verify")
    check.add_argument("--plan", type=Path, required=True)
    check.add_argument("--chats", type=Path, required=True)
    args = parser.parse_args()

    setup_django()
    if args.command == "create":
        plans = dict(item.split("=", 1) for item in args.plans)
        create({name: int(count) for name, count in plans.items()}, args.per_user, args.out_dir)
    else:
        print(json.dumps(verify(args.plan, args.chats)))


if __name__ == "__main__":
    main()
