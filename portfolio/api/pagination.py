from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


def _positive_whole_number(request, field):
    """The query parameter's value as an int ≥ 1, None when it is absent; a 400 naming it otherwise.

    DRF reads `?page=abc` as a page that does not exist (404) and `?page_size=abc` as no size at all (the
    default page): both hide a client's mistake, so a value that is not a whole number ≥ 1 is refused.
    """
    text = request.query_params.get(field)
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise serializers.ValidationError({field: [f"'{text[:40]}' is not a whole number of 1 or more."]})
    return int(text)


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    # Bounds one response: a client cannot ask for a whole 100k-row history in one page.
    max_page_size = 500

    def get_page_number(self, request, paginator):
        if request.query_params.get(self.page_query_param) in self.last_page_strings:
            return paginator.num_pages
        return _positive_whole_number(request, self.page_query_param) or 1

    def get_page_size(self, request):
        size = _positive_whole_number(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)
