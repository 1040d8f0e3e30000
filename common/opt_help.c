/* opt_help.c — --help, the man page and the docs' option table, all from the option table. */
#include "opt.h"
#include "cfg.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HELP_COL 30   /* where the explanation starts in --help */
#define HELP_WIDTH 100

static bool help_is_option(const kp_opt_t *o)
{
    return o->type != KP_OPT_SECTION && o->type != KP_OPT_END && !(o->flags & KP_OPT_HIDDEN);
}

/* "-s, --symbols LIST" or "    --all-symbols". */
static void help_left(const kp_opt_t *o, char *out, size_t len)
{
    const char *arg = o->type == KP_OPT_FLAG ? NULL : (o->arg ? o->arg : "VALUE");
    if (!o->name)
        snprintf(out, len, "  -%c%s%s", o->key, arg ? " " : "", arg ? arg : "");
    else if (o->key)
        snprintf(out, len, "  -%c, --%s%s%s", o->key, o->name, arg ? " " : "", arg ? arg : "");
    else
        snprintf(out, len, "      --%s%s%s", o->name, arg ? " " : "", arg ? arg : "");
}

/* "[ENV; default D]", "[default D]", "[ENV]" or "". */
static void help_tail(const kp_opt_t *o, char *out, size_t len)
{
    bool def = o->def && o->type != KP_OPT_FLAG;
    if (o->env && def)
        snprintf(out, len, "[%s; default %s]", o->env, *o->def ? o->def : "\"\"");
    else if (o->env)
        snprintf(out, len, "[%s]", o->env);
    else if (def)
        snprintf(out, len, "[default %s]", *o->def ? o->def : "\"\"");
    else
        out[0] = '\0';
}

static void help_text_option(FILE *out, const kp_opt_t *o)
{
    char left[128], tail[160];
    help_left(o, left, sizeof left);
    help_tail(o, tail, sizeof tail);
    int col = fprintf(out, "%s", left);
    const char *h = o->help ? o->help : "";
    while (1) {
        size_t l = strcspn(h, "\n");
        if (col >= HELP_COL - 1) {
            fputc('\n', out);
            col = 0;
        }
        col += fprintf(out, "%*s%.*s", HELP_COL - col, "", (int)l, h);
        if (!h[l])
            break;
        fputc('\n', out);
        col = 0;
        h += l + 1;
    }
    if (*tail && col + 2 + (int)strlen(tail) > HELP_WIDTH)
        fprintf(out, "\n%*s%s\n", HELP_COL, "", tail);
    else
        fprintf(out, "%s%s\n", *tail ? "  " : "", tail);
}

static void help_text(const kp_opt_prog_t *p, FILE *out)
{
    fprintf(out, "%s — %s\n\n%s", p->name, p->summary, p->synopsis);
    if (p->intro)
        fprintf(out, "\n%s", p->intro);
    fputs("\nOptions (flag > environment > default):\n", out);
    for (const kp_opt_t *o = p->opts; o->type != KP_OPT_END; o++) {
        if (o->type == KP_OPT_SECTION)
            fprintf(out, "\n%s:\n", o->help);
        else if (help_is_option(o))
            help_text_option(out, o);
    }
    fputs("  -h, --help[=FORMAT]         this help; FORMAT man or markdown for the manual page or\n"
          "                              the docs' option table\n"
          "  -V, --version               versions of the program and its libraries\n", out);
    if (p->epilog)
        fprintf(out, "\n%s", p->epilog);
}

/* roff: a backslash, a leading dot or quote, and '-' (a hyphen, not a minus sign). */
static void man_escaped(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++) {
        bool line_start = i == 0 || s[i - 1] == '\n';
        if (line_start && (s[i] == '.' || s[i] == '\''))
            fputs("\\&", out);
        if (s[i] == '\\')
            fputs("\\e", out);
        else if (s[i] == '-')
            fputs("\\-", out);
        else
            fputc(s[i], out);
    }
}

static void man_str(FILE *out, const char *s)
{
    man_escaped(out, s, strlen(s));
}

static void man_upper(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc(*s >= 'a' && *s <= 'z' ? *s - 32 : *s, out);
}

static void man_option(FILE *out, const kp_opt_t *o)
{
    fputs(".TP\n", out);
    if (o->key)
        fprintf(out, "\\fB\\-%c\\fR%s", o->key, o->name ? ", " : "");
    if (o->name) {
        fputs("\\fB\\-\\-", out);
        man_str(out, o->name);
        fputs("\\fR", out);
    }
    if (o->type != KP_OPT_FLAG) {
        fputs(" \\fI", out);
        man_str(out, o->arg ? o->arg : "VALUE");
        fputs("\\fR", out);
    }
    fputc('\n', out);
    man_str(out, o->help ? o->help : "");
    fputc('\n', out);
    if (o->def && o->type != KP_OPT_FLAG) {
        fputs(".br\nDefault: ", out);
        man_str(out, *o->def ? o->def : "\"\"");
        fputs(".\n", out);
    }
    if (o->env)
        fprintf(out, ".br\nEnvironment: \\fB%s\\fR.\n", o->env);
    if (o->alias) {
        fputs("Also accepted as \\fB\\-\\-", out);
        man_str(out, o->alias);
        fputs("\\fR.\n", out);
    }
}

/* The synopsis without its "usage: " and the indent that aligned the lines under it. */
static void man_synopsis(FILE *out, const char *syn)
{
    const size_t indent = strncmp(syn, "usage: ", 7) ? 0 : 7;
    for (const char *l = syn; *l;) {
        size_t n = strcspn(l, "\n"), lead = 0;
        if (l == syn)
            lead = indent;
        else
            while (lead < indent && lead < n && l[lead] == ' ')
                lead++;
        man_escaped(out, l + lead, n - lead);
        fputc('\n', out);
        l += n + (l[n] == '\n');
    }
}

static void man_header(const kp_opt_prog_t *p, FILE *out)
{
    char date[32];
    const char *sde = getenv("SOURCE_DATE_EPOCH"); /* reproducible pages */
    time_t t = sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&t));
    fputs(".\\\" Generated from the option table by `", out);
    man_str(out, p->name);
    fputs(" --help=man`; do not edit.\n.TH ", out);
    man_upper(out, p->name);
    fprintf(out, " 1 \"%s\" \"klinepipe %s\" \"klinepipe manual\"\n.SH NAME\n", date, KLINEPIPE_VERSION);
    man_str(out, p->name);
    fputs(" \\- ", out);
    man_str(out, p->summary);
    fputs("\n.SH SYNOPSIS\n.nf\n", out);
    man_synopsis(out, p->synopsis);
    fputs(".fi\n", out);
    if (p->intro) {
        fputs(".SH DESCRIPTION\n", out);
        man_str(out, p->intro);
    }
}

static void man_environment(const kp_opt_prog_t *p, FILE *out)
{
    fputs(".SH ENVIRONMENT\nEach variable is read when its option is not given.\n", out);
    for (const kp_opt_t *o = p->opts; o->type != KP_OPT_END; o++) {
        if (!help_is_option(o) || !o->env)
            continue;
        fprintf(out, ".TP\n.B %s\nas \\fB\\-", o->env);
        if (o->name) {
            fputs("\\-", out);
            man_str(out, o->name);
        } else
            fputc(o->key, out);
        fputs("\\fR\n", out);
    }
}

static void help_man(const kp_opt_prog_t *p, FILE *out)
{
    man_header(p, out);
    fputs(".SH OPTIONS\nA flag wins over its environment variable, which wins over the default.\n", out);
    for (const kp_opt_t *o = p->opts; o->type != KP_OPT_END; o++) {
        if (o->type == KP_OPT_SECTION) {
            fputs(".SS ", out);
            man_str(out, o->help);
            fputc('\n', out);
        } else if (help_is_option(o))
            man_option(out, o);
    }
    fputs(".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR[=\\fIFORMAT\\fR]\nthis help; FORMAT \\fBman\\fR or "
          "\\fBmarkdown\\fR for this page or the docs' option table\n"
          ".TP\n\\fB\\-V\\fR, \\fB\\-\\-version\\fR\nversions of the program and its libraries\n", out);
    man_environment(p, out);
    if (p->epilog) {
        fputs(".SH EXIT STATUS\n", out);
        man_str(out, p->epilog);
    }
}

/* Markdown table cells: '|' would end the cell, a newline the row. */
static void md_cell(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s == '\n' ? ' ' : *s, out);
    }
}

static void md_option(FILE *out, const kp_opt_t *o)
{
    const char *arg = o->type == KP_OPT_FLAG ? "" : (o->arg ? o->arg : "VALUE");
    fputs("| `", out);
    if (o->key && o->name)
        fprintf(out, "-%c`, `", o->key);
    if (o->name)
        fprintf(out, "--%s%s", o->name, *arg ? " " : "");
    else
        fprintf(out, "-%c%s", o->key, *arg ? " " : "");
    md_cell(out, arg);
    fputs("` | ", out);
    if (o->env)
        fprintf(out, "`%s`", o->env);
    fputs(" | ", out);
    if (o->def && o->type != KP_OPT_FLAG)
        fprintf(out, "`%s`", *o->def ? o->def : "\"\"");
    fputs(" | ", out);
    md_cell(out, o->help);
    if (o->alias)
        fprintf(out, " (also `--%s`)", o->alias);
    fputs(" |\n", out);
}

static void help_markdown(const kp_opt_prog_t *p, FILE *out)
{
    fprintf(out, "<!-- generated by `%s --help=markdown` -->\n", p->name);
    fputs("| option | environment | default | meaning |\n|---|---|---|---|\n", out);
    for (const kp_opt_t *o = p->opts; o->type != KP_OPT_END; o++) {
        if (o->type == KP_OPT_SECTION) {
            fputs("| **", out);
            md_cell(out, o->help);
            fputs("** | | | |\n", out);
        } else if (help_is_option(o))
            md_option(out, o);
    }
}

void kp_opt_help(const kp_opt_prog_t *p, FILE *out, kp_opt_fmt_t fmt)
{
    if (fmt == KP_OPT_FMT_MAN)
        help_man(p, out);
    else if (fmt == KP_OPT_FMT_MARKDOWN)
        help_markdown(p, out);
    else
        help_text(p, out);
}
