from django.http import HttpResponseForbidden


def refuse_flagged(get_response):
    """Answers 403 itself when the request carries ``X-Refuse: 1``."""
    def middleware(request):
        if request.headers.get("X-Refuse") == "1":
            return HttpResponseForbidden("flagged")
        request.passed_test_middleware = True
        return get_response(request)
    return middleware
