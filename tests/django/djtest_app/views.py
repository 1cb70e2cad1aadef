from django.http import HttpResponse
from django.shortcuts import render


def page(request):
    return render(request, "djtest_page.html")


def hello(request):
    return HttpResponse(f"hello {request.user.username or 'anonymous'}", content_type="text/plain")
