# SPDX-License-Identifier: GPL-2.0
#
# Sphinx configuration of the standalone documentation build: `make
# htmldocs` or scripts/check-docs.sh, which build into build/htmldocs.
#
# In a kernel tree the kernel's own Documentation/conf.py is used instead,
# and only the pages under security/ and translations/ are copied there.

import os
import sys

top = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.join(top, 'Documentation', 'sphinx'))

project = 'vTPM proxy driver'
copyright = 'The vTPM proxy driver authors'
author = 'The vTPM proxy driver authors'

extensions = ['kerneldoc_standalone']

# scripts/kernel-doc, extracted from linux-source-6.12 into build/.
kerneldoc_bin = os.environ.get(
    'KERNELDOC', os.path.join(top, 'build', 'linux-source-6.12', 'scripts',
                              'kernel-doc'))
kerneldoc_srctree = top

# Let the C domain parse the kernel's annotations in kernel-doc output.
c_id_attributes = ['__user', '__iomem', '__must_check', '__init', '__exit',
                   '__always_inline', 'noinline', 'asmlinkage']

master_doc = 'index'
language = 'en'
exclude_patterns = []
highlight_language = 'none'

html_theme = 'alabaster'
html_title = project
html_show_sourcelink = False
