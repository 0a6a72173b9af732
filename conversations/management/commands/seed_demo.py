"""Build a big site fast, shaped like a busy team's after a year: for scale measurements (bench/SCALE.md).

`manage.py seed_demo --turns 1000000` writes about that many turns with bulk inserts: one user ("demo") with many
chats, one of them very long and twenty long ones, and everyone else with short chats. The other accounts are
"member1", "member2", ...; every account's password is --password. Words the scale report searches for: "garden"
in about one turn in ten, "quetzal" in a few (about one in 20,000; the first in the longest chat of "demo").
"""

import random
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone

from conversations.models import Conversation, Turn

WORDS = [
    "time", "person", "year", "way", "day", "thing", "man", "world", "life", "hand", "part", "child", "eye", "woman",
    "place", "work", "week", "case", "point", "number", "group", "problem", "fact", "question", "answer", "river",
    "kitchen", "window", "bread", "coffee", "music", "travel", "budget", "report", "meeting", "python", "function",
    "error", "server", "database", "recipe", "weather", "holiday", "letter", "email", "summary", "draft", "plan",
    "idea",
]
COMMON_WORD = "garden"
RARE_WORD = "quetzal"
INSERT_BATCH = 5000


class Command(BaseCommand):
    help = "Fill the database with a large demo site (users, chats, turns) using bulk inserts."

    def add_arguments(self, parser):
        parser.add_argument("--turns", type=int, default=10_000, help="About how many turns to write.")
        parser.add_argument("--password", default="demo-password", help="The password of every account made.")
        parser.add_argument("--random-seed", type=int, default=33)

    def handle(self, *args, turns, password, random_seed, **options):
        if turns < 1000:
            raise CommandError("Use --turns 1000 or more.")
        User = get_user_model()
        if User.objects.filter(username="demo").exists():
            raise CommandError('A user "demo" exists already: seed an empty database.')
        self.random = random.Random(random_seed)
        self.now = timezone.now()
        self.next_turn_id = (Turn.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
        self.rare_left = max(3, turns // 20_000)

        # The site: 1,080,913 turns, 203 users; the heaviest user has 5,000 chats and ~6% of the turns,
        # one chat of 5,000 turns and twenty of 1,000.
        members = max(2, turns // 5000)
        hashed = make_password(password)
        users = User.objects.bulk_create(
            [User(username="demo", password=hashed)]
            + [User(username=f"member{n}", password=hashed) for n in range(1, members + 1)]
        )
        demo, others = users[0], users[1:]
        plan: list[tuple] = [(demo, max(10, turns // 200))]
        plan += [(demo, max(10, turns // 1000)) for _ in range(20)]
        plan += [(demo, 2 + self.random.randrange(9)) for _ in range(max(20, turns // 200))]
        written = sum(length for _user, length in plan)
        while written < turns:
            length = 2 + self.random.randrange(19)
            plan.append((others[len(plan) % len(others)], length))
            written += length
        self.stdout.write(f"Writing {len(users)} users, {len(plan)} chats, {written} turns...")
        for start in range(0, len(plan), 500):
            self._write_chats(plan[start : start + 500])
        self._finish()
        self.stdout.write(self.style.SUCCESS(f"Done: log in as demo / {password}."))

    def _text(self, rare: bool) -> str:
        words = self.random.choices(WORDS, k=12 + self.random.randrange(40))
        if self.random.random() < 0.1:
            words.insert(self.random.randrange(len(words)), COMMON_WORD)
        if rare:
            words.insert(self.random.randrange(len(words)), RARE_WORD)
        return " ".join(words).capitalize() + "."

    @transaction.atomic
    def _write_chats(self, plan: list[tuple]) -> None:
        conversations, turns = [], []
        for index, (owner, length) in enumerate(plan):
            updated = self.now - timedelta(minutes=self.random.randrange(365 * 24 * 60))
            conversation = Conversation(
                id=uuid.uuid4(), owner=owner, title=" ".join(self.random.choices(WORDS, k=3)).capitalize(),
                turn_count=length, created_at=updated - timedelta(minutes=length), updated_at=updated,
            )
            conversations.append(conversation)
            rare_at = -1
            if self.rare_left and (owner.username == "demo" and index == 0 or self.random.random() < 0.002):
                rare_at = self.random.randrange(length)
                self.rare_left -= 1
            parent_id = None
            for position in range(1, length + 1):
                is_answer = position % 2 == 0
                failed = is_answer and self.random.random() < 0.01
                turns.append(Turn(
                    id=self.next_turn_id, conversation_id=conversation.id, parent_id=parent_id, position=position,
                    role=Turn.Role.ASSISTANT if is_answer else Turn.Role.USER,
                    content=self._text(position - 1 == rare_at),
                    status=Turn.Status.FAILED if failed else Turn.Status.COMPLETE,
                    error="The model service did not answer." if failed else "",
                    model="demo-model" if is_answer else "",
                    prompt_tokens=40 * position if is_answer else 0, completion_tokens=60 if is_answer else 0,
                    created_at=conversation.created_at + timedelta(minutes=position),
                ))
                conversation.total_tokens += turns[-1].prompt_tokens + turns[-1].completion_tokens
                parent_id = self.next_turn_id
                self.next_turn_id += 1
            conversation.current_turn_id = parent_id  # one branch: its newest turn is the one shown
        # The turns first: a conversation's current turn must exist when it is written (checked at once), while
        # the turns' own foreign key to their conversation is checked at the commit.
        Turn.objects.bulk_create(turns, batch_size=INSERT_BATCH)
        Conversation.objects.bulk_create(conversations, batch_size=INSERT_BATCH)

    def _finish(self) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), [Turn]):
                cursor.execute(statement)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
