"""Partner websites that embed the chat widget: keys, allowed origins, quotas, usage (`store`),
and the normalisation of web origins (`origins`). The CLI lives in `assistant.cli.partners`."""
