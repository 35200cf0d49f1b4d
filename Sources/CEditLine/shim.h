#ifndef SKYNET_CEDITLINE_SHIM_H
#define SKYNET_CEDITLINE_SHIM_H
// BSD libedit from Debian (libedit-dev): line editing, history and completion for `sky cli`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <editline/readline.h>

// libedit's settings are C globals; Swift 6 refuses to touch global mutable state, so these
// functions do it. They are called from the one thread that runs the shell's editor.

/// Names the program for ~/.editrc, breaks words only at blanks (so `service=up` completes as
/// one word), and installs the completion hook.
static inline void sky_editline_setup(rl_completion_func_t *complete) {
    rl_readline_name = "sky";
    rl_basic_word_break_characters = " \t\n";
    rl_completer_word_break_characters = strdup(" \t\n");
    rl_attempted_completion_function = complete;
}

/// Inside the completion hook: the line typed so far.
static inline const char *sky_editline_line(void) { return rl_line_buffer; }

/// Inside the completion hook: never fall back to file names; append `character` (0: none)
/// after a unique completion.
static inline void sky_editline_completion_settings(int character) {
    rl_attempted_completion_over = 1;
    rl_completion_append_character = character;
}
#endif
