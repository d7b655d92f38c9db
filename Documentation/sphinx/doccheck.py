# SPDX-License-Identifier: GPL-2.0
"""Check the documentation against its translations and the code.

Run by scripts/check-docs.sh with Debian's python3 and python3-docutils.
Each subcommand prints what is wrong and exits with status 1 when the
check fails, 0 when it passes.

  structure ORIGINAL TRANSLATION
      The two documents have the same sections at each level, in the
      same order. Each section holds the same tables (rows and columns),
      lists (items), kernel-doc directives (arguments) and literal
      blocks. Literal blocks must have the same text, because code,
      commands and their output are not translated.

  original TRANSLATION
      Print the path of the original named in the translation's
      ":Original:" field, relative to the top of the repository.

  example DOCUMENT OUTPUT
      Write the C code blocks of DOCUMENT that define main() to OUTPUT,
      so that they can be compiled.

  errno DOCUMENT SOURCE...
      Every errno name that a SOURCE returns (-EXXX) is named in
      DOCUMENT as ``EXXX``. -ERESTARTSYS is what the application sees as
      EINTR or as a restarted call, so DOCUMENT must name EINTR for it.
"""

import difflib
import re
import sys

import docutils.core
from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.parsers.rst.directives import body

# Errno values that the kernel replaces before returning to userspace.
ERRNO_SEEN_AS = {
    'ERESTARTSYS': 'EINTR',
    'ENOIOCTLCMD': 'ENOTTY',
}


class KernelDocStub(Directive):
    """Stand in for the kernel-doc directive, keeping only its arguments."""

    required_arguments = 1
    optional_arguments = 0
    final_argument_whitespace = True
    has_content = False
    option_spec = {
        'identifiers': directives.unchanged,
        'functions': directives.unchanged,
        'no-identifiers': directives.unchanged,
        'export': directives.unchanged,
        'internal': directives.unchanged,
        'doc': directives.unchanged,
    }

    def run(self):
        options = ' '.join('%s=%s' % (key, ' '.join(value.split()))
                           for key, value in sorted(self.options.items()))
        node = nodes.container(classes=['kernel-doc'])
        node['kernel-doc'] = (self.arguments[0] + ' ' + options).strip()
        return [node]


class IgnoredStub(Directive):
    """Stand in for a Sphinx directive whose output is not compared."""

    required_arguments = 0
    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = None

    def run(self):
        return []


class OptionsAny(dict):
    """An option_spec that accepts every option unchanged."""

    def __missing__(self, key):
        return directives.unchanged

    def __contains__(self, key):
        return True


IgnoredStub.option_spec = OptionsAny()


def parse(path):
    """Parse a reST file with docutils alone, with stand-ins for the
    directives that only Sphinx or the kernel's extensions know."""
    directives.register_directive('kernel-doc', KernelDocStub)
    directives.register_directive('code-block', body.CodeBlock)
    for name in ('toctree', 'c:namespace', 'only', 'highlight'):
        directives.register_directive(name, IgnoredStub)
    with open(path, encoding='utf-8') as source:
        text = source.read()
    settings = {
        'report_level': 2,
        'halt_level': 5,
        'warning_stream': sys.stderr,
        'file_insertion_enabled': True,
        'syntax_highlight': 'none',
        # Keep the top title a section in both documents: the translation
        # header before it would stop docutils from promoting it.
        'doctitle_xform': False,
    }
    return docutils.core.publish_doctree(text, source_path=path,
                                         settings_overrides=settings)


def section_title(section):
    title = section.next_node(nodes.title)
    return title.astext() if title else '(untitled)'


def table_shape(table):
    group = table.next_node(nodes.tgroup)
    rows = len(list(table.findall(nodes.row)))
    return '%dx%d' % (rows, group['cols'] if group else 0)


def outline(document):
    """Return the document's shape as (signature, description) pairs in
    document order. A signature names the element and its place in the
    section tree, never translated text; the description adds the title
    for the report."""
    items = []

    def walk(node, number, level):
        child_sections = 0
        for child in node.children:
            if isinstance(child, nodes.section):
                child_sections += 1
                child_number = number + [child_sections]
                label = '.'.join(str(n) for n in child_number)
                items.append(('%s section, level %d' % (label, level + 1),
                              section_title(child)))
                walk(child, child_number, level + 1)
                continue
            where = '.'.join(str(n) for n in number) or '0'
            for element in element_signatures(child):
                items.append(('%s %s' % (where, element), ''))

    walk(document, [], 0)
    return items


def element_signatures(node):
    """Yield the signatures of the compared elements inside a body node,
    without descending into sections."""
    if isinstance(node, nodes.section):
        return
    if isinstance(node, nodes.table):
        yield 'table %s' % table_shape(node)
        return
    if isinstance(node, nodes.literal_block):
        text = node.astext().rstrip()
        first = text.splitlines()[0] if text else ''
        yield 'literal block, %d lines, first: %s, text: %s' % (
            len(text.splitlines()), first.strip(), text)
        return
    if isinstance(node, nodes.container) and 'kernel-doc' in node:
        yield 'kernel-doc %s' % node['kernel-doc']
        return
    if isinstance(node, (nodes.bullet_list, nodes.enumerated_list)):
        kind = 'bullet' if isinstance(node, nodes.bullet_list) else 'numbered'
        yield '%s list, %d items' % (kind, len(node.children))
    if isinstance(node, (nodes.Admonition, nodes.field_list)):
        # The translation header and its disclaimer are not in the
        # original.
        return
    for child in node.children:
        if isinstance(child, nodes.Element):
            yield from element_signatures(child)


def short(signature):
    """Cut the text of a literal block out of a signature for printing."""
    return signature.split(', text: ')[0]


def print_literal_diff(original, translation):
    """Show how two literal blocks at the same place differ."""
    marker = ', text: '
    if marker not in original or marker not in translation:
        return
    print('  literal blocks must be identical, because code, commands and '
          'their output are not translated:')
    diff = difflib.unified_diff(
        original.split(marker, 1)[1].splitlines(),
        translation.split(marker, 1)[1].splitlines(),
        'original', 'translation', n=1, lineterm='')
    for line in list(diff)[:12]:
        print('    ' + line)


def check_structure(original, translation):
    left = outline(parse(original))
    right = outline(parse(translation))
    left_sigs = [sig for sig, _ in left]
    right_sigs = [sig for sig, _ in right]
    if left_sigs == right_sigs:
        print('%s and %s have the same structure: %d sections, tables, '
              'lists, literal blocks and kernel-doc directives' %
              (original, translation, len(left_sigs)))
        return 0

    print('%s differs in structure from %s:' % (translation, original))
    matcher = difflib.SequenceMatcher(a=left_sigs, b=right_sigs,
                                      autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == 'equal':
            continue
        for sig, title in left[i1:i2]:
            print('  only in the original:    %s %s' % (short(sig), title))
        for sig, title in right[j1:j2]:
            print('  only in the translation: %s %s' % (short(sig), title))
        if tag == 'replace' and i2 - i1 == j2 - j1:
            for ours, theirs in zip(left_sigs[i1:i2], right_sigs[j1:j2]):
                print_literal_diff(ours, theirs)
    return 1


def original_of(translation):
    with open(translation, encoding='utf-8') as source:
        for line in source:
            match = re.match(r':Original:\s*(?::ref:`)?(\S+?)(?:\s|`|$)',
                             line)
            if match:
                print(match.group(1))
                return 0
    print('%s has no ":Original:" line' % translation, file=sys.stderr)
    return 1


def extract_examples(document, output):
    blocks = []
    for block in parse(document).findall(nodes.literal_block):
        text = block.astext()
        if 'c' in block.get('classes', []) and re.search(
                r'^int main\(', text, re.M):
            blocks.append(text)
    if not blocks:
        print('%s has no C code block that defines main()' % document)
        return 1
    with open(output, 'w', encoding='utf-8') as out:
        out.write('\n'.join(blocks))
    print('%s: %d C example(s) written to %s' % (document, len(blocks),
                                                  output))
    return 0


def check_errno(document, sources):
    with open(document, encoding='utf-8') as doc:
        text = doc.read()
    missing = []
    for path in sources:
        with open(path, encoding='utf-8') as source:
            code = source.read()
        for name in sorted(set(re.findall(r'-(E[A-Z0-9]+)\b', code))):
            seen = ERRNO_SEEN_AS.get(name, name)
            if '``%s``' % seen not in text:
                missing.append('%s (returned in %s%s)' % (
                    seen, path, '' if seen == name else ' as ' + name))
    if missing:
        print('%s does not name these errno values:' % document)
        for item in missing:
            print('  ' + item)
        return 1
    print('%s names every errno value that %s return(s)' %
          (document, ', '.join(sources)))
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == 'structure':
        return check_structure(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == 'original':
        return original_of(argv[2])
    if len(argv) == 4 and argv[1] == 'example':
        return extract_examples(argv[2], argv[3])
    if len(argv) >= 4 and argv[1] == 'errno':
        return check_errno(argv[2], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
