from django.http import HttpResponse
from django.shortcuts import render


def page(request):
    return render(request, "djtest_page.html")


def hello(request):
    return HttpResponse(f"hello {request.user.username or 'anonymous'}", content_type="text/plain")


def session_value(request, name):
    """What the session holds under ``name`` (what socket handlers stored there)."""
    return HttpResponse(str(request.session.get(name, "")), content_type="text/plain")
