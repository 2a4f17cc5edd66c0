/* What the plugin binds: libxtables and the target's kernel ABI struct. */
#include <xtables.h>
#include <linux/netfilter.h>
#include <linux/netfilter/xt_SYNPROXY.h>
