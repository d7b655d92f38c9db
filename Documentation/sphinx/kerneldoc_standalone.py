# SPDX-License-Identifier: GPL-2.0
"""Provide the kernel-doc directive for the standalone documentation build.

In a kernel tree, Documentation/sphinx/kerneldoc.py provides the
``kernel-doc`` directive. This repository builds its documentation
without a kernel tree, so this extension provides a directive of the same
name and options. It runs the kernel's scripts/kernel-doc, which
scripts/check-docs.sh extracts from Debian's linux-source package, and
parses the reStructuredText that it prints into the document.

Configuration values:

kerneldoc_bin
    Path of scripts/kernel-doc.
kerneldoc_srctree
    Folder that the directive's file argument is relative to: the top of
    this repository.
"""

import os
import subprocess

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import ViewList
import sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging
from sphinx.util.docutils import switch_source_input

logger = logging.getLogger(__name__)

# kernel-doc marks the source line of what follows with this comment.
LINENO_PREFIX = '.. LINENO '


class KernelDocDirective(Directive):
    """Insert the kernel-doc comments of a C source file.

    Options, as in the kernel's directive: ``identifiers`` (or
    ``functions``) lists the names to include, ``no-identifiers`` the
    names to leave out. Without them, all documented items are included.
    """

    required_arguments = 1
    optional_arguments = 0
    has_content = False
    option_spec = {
        'identifiers': directives.unchanged,
        'functions': directives.unchanged,
        'no-identifiers': directives.unchanged,
    }

    def run(self):
        env = self.state.document.settings.env
        config = env.config
        path = os.path.join(config.kerneldoc_srctree, self.arguments[0])
        env.note_dependency(os.path.abspath(path))

        cmd = ['perl', config.kerneldoc_bin, '-rst', '-enable-lineno',
               '-sphinx-version', sphinx.__version__]
        names = self.options.get('identifiers',
                                 self.options.get('functions'))
        if names is not None:
            if names.split():
                for name in names.split():
                    cmd += ['-function', name]
            else:
                cmd += ['-no-doc-sections']
        for name in self.options.get('no-identifiers', '').split():
            cmd += ['-nosymbol', name]
        cmd.append(path)

        result = subprocess.run(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, check=False)
        err = result.stderr.decode('utf-8', 'replace').strip()
        if result.returncode != 0 or err:
            # A warning fails a build run with -W, as it should: kernel-doc
            # reports a missing or malformed comment this way.
            logger.warning('kernel-doc %s: exit status %d: %s',
                           self.arguments[0], result.returncode, err,
                           location=(env.docname, self.lineno))
            if result.returncode != 0:
                return [nodes.error(None, nodes.paragraph(
                    text='kernel-doc failed on ' + self.arguments[0]))]

        return self.parse_output(result.stdout.decode('utf-8'), path)

    def parse_output(self, text, path):
        """Parse kernel-doc's reStructuredText, keeping its line numbers,
        so that a markup error points at the C source line."""
        lines = ViewList()
        lineno = 0
        for line in text.expandtabs(8).splitlines():
            if line.startswith(LINENO_PREFIX):
                lineno = int(line[len(LINENO_PREFIX):]) - 1
                continue
            lines.append(line, path, lineno)
            lineno += 1

        container = nodes.section()
        with switch_source_input(self.state, lines):
            self.state.nested_parse(lines, 0, container, match_titles=True)
        return container.children


def check_config(app, config):
    """Fail early, with the remedy, when scripts/kernel-doc is missing."""
    if not config.kerneldoc_bin or not os.path.isfile(config.kerneldoc_bin):
        raise ExtensionError(
            'scripts/kernel-doc not found at %r; run scripts/check-docs.sh '
            'or make htmldocs, which extract it from linux-source-6.12'
            % config.kerneldoc_bin)


def setup(app):
    app.add_config_value('kerneldoc_bin', None, 'env')
    app.add_config_value('kerneldoc_srctree', None, 'env')
    app.add_directive('kernel-doc', KernelDocDirective)
    app.connect('config-inited', check_config)
    return {
        'version': '1.0',
        'parallel_read_safe': True,
        'parallel_write_safe': True,
    }
