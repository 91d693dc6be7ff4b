"""DRF's content negotiation with its choice remembered per Accept header.

DRF parses the Accept header and matches it against the view's renderers on every request, a tenth of the
framework's own CPU for an API answer; yet the choice depends only on the header's text, the format asked
for and the renderers offered, and clients send the same few headers again and again. Each process remembers
the choices of the last headers it saw (a bounded number: a client inventing headers costs memory no more than
that); a header DRF refuses (406) is not remembered, so it is refused again the same way.
"""

from threading import Lock

from rest_framework.negotiation import DefaultContentNegotiation

REMEMBERED_MAX = 256

_remembered: dict[tuple, tuple[int, str]] = {}
_lock = Lock()


class RememberingContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        format_asked = format_suffix or (request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
                                         if self.settings.URL_FORMAT_OVERRIDE else None)
        key = (request.headers.get("accept"), format_asked,
               tuple((type(renderer), renderer.media_type, renderer.format) for renderer in renderers))
        found = _remembered.get(key)
        if found is not None:
            index, media_type = found
            return renderers[index], media_type
        renderer, media_type = super().select_renderer(request, renderers, format_suffix)
        with _lock:
            if len(_remembered) >= REMEMBERED_MAX:
                # Oldest first (dicts keep their insertion order).
                del _remembered[next(iter(_remembered))]
            _remembered[key] = (renderers.index(renderer), media_type)
        return renderer, media_type
