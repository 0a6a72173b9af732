"""Code written without a fence (the embedded model does this): fenced before rendering, so its comments are not
headings and its lines keep their breaks; markdown that is not code is left exactly as it was. And the local
backend asks its model to fence code in the first place."""

import pytest

from conversations import answering, llm, services
from conversations.markdown import render_markdown
from conversations.markdown_code import fence_bare_code
from conversations.models import Turn

# A program written as bare lines, as the walk-through saw the embedded model write one (its comments became
# headings). Not a capture: asked again (five prompts at its temperature, 0.2), the model fenced its code.
BARE_CODE_ANSWER = """Here is a Python function that sorts a list:

# Function to sort a list
def sort_list(lst):
    # Sort the list in ascending order
    lst.sort()
    return lst

# Example usage
numbers = [5, 2, 9, 1]
print(sort_list(numbers))

This sorts the list in place and returns it."""

# Answers captured from SmolLM2-135M-Instruct (the embedded model, Q4_1, temperature 0.2, the default system prompt
# without the fencing note), which fenced their code: they must render exactly as before.
CAPTURED_FENCED_ANSWERS = [
    "```python\ndef sort_list(lst):\n    return sorted([x for x in lst if isinstance(x, list[None]) and not "
    "isinstance(x, (int, float))])\n```\n\nThis function uses a generator expression to create a new list of only "
    "the elements that are lists themselves. This is more efficient than sorting the entire list by iterating over "
    "each element individually.",
    "```javascript\nfunction reverseString(str) {\n    return str.split('').reverse().join('');}\n```\nThis function "
    "uses the `slice` method to create a reversed string from the original string, which is more efficient than "
    "reversing the entire string itself.",
    "To read a file line by line in Python, you can use the `with` statement to open the file and iterate over its "
    "lines. Here's an example:\n```python\nfile_path = 'example.txt'\nwith open(file_path, \"r+\") as f:\n    for "
    "line in f:\n        print(line)\n```\nThis will output:\n```\n1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 "
    "20 21 22 23 24 25 \n```",
    "```python\ndef fibonacci(n):\n    if n <= 0:\n        return \"Fibonacci sequence starts with 1\"\n    elif n == "
    "1:\n        return 1\n    else:\n        a, b = 0, 1\n        for _ in range(2, n + 1):\n"
    "            a, b = b, a + b\n        return a\n```\nThis program uses recursion to calculate the Fibonacci "
    "sequence up to `n` numbers. "
    "The outer function initializes a variable `fib_sequence` and then calls itself with decreasing values of `n`.",
]


def test_a_bare_program_renders_as_code_not_headings():
    html = render_markdown(BARE_CODE_ANSWER)
    assert "<h1>" not in html and "<h2>" not in html
    assert '<pre class="highlight"><code class="language-python">' in html
    assert html.count("<pre") == 1


@pytest.mark.parametrize("text", [
    "# A heading\n\nSome prose under it.\n\n## Another\n\n- a list item\n- another one",
    "Use `sorted(items)` for a new list, or `items.sort()` to sort in place.",
    "```python\ndef f():\n    return 1\n```\n\nThen call f().",
    "    indented = 'code block'\n    kept = 'as it is'",
    "1. First step:\n   x = 1\n   y = 2\n2. Second step",
    "Prices: $5 and $10.\nx = 3 is one line of code only.",
    "> quoted text;\n> more quoted text;",
])
def test_markdown_that_is_not_bare_code_is_left_as_it_was(text):
    assert fence_bare_code(text) == text


@pytest.mark.parametrize("answer", CAPTURED_FENCED_ANSWERS)
def test_the_models_fenced_answers_are_left_as_they_were(answer):
    assert fence_bare_code(answer) == answer


def test_bare_code_in_other_languages_gets_a_fence_of_its_own():
    javascript = "Here it is:\nfunction reverse(text) {\n  return text.split('').reverse().join('');\n}\nDone."
    assert fence_bare_code(javascript) == (
        "Here it is:\n```javascript\nfunction reverse(text) {\n  return text.split('').reverse().join('');\n}\n```"
        "\nDone."
    )


@pytest.mark.django_db(transaction=True)
def test_the_local_backend_asks_its_model_to_fence_code(user, fake_upstream, settings):
    # The local backend talks to llama.cpp's OpenAI-compatible server on 127.0.0.1: here, the fake one.
    settings.LLM_BACKEND = "local"
    settings.LOCAL_MODEL_PORT = int(fake_upstream.base_url.rsplit(":", 1)[1].split("/")[0])
    conversation = services.conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="Write a sort function")
    system = fake_upstream.chat_requests[-1].messages[0]
    assert system["role"] == "system"
    assert system["content"].endswith(llm.LocalServerBackend.system_note)
    assert Turn.objects.filter(conversation=conversation, status=Turn.Status.COMPLETE).exists()
