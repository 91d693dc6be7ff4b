from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    # Bounds one response: a client cannot ask for a whole 100k-row history in one page.
    max_page_size = 500
