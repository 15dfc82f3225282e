from django.urls import path

from . import views

urlpatterns = [
    path("", views.cluster_list, name="cluster-list"),
    path("clusters/new/", views.cluster_new, name="cluster-new"),
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster-detail"),
    path("credentials/", views.credential_list, name="credential-list"),
]
