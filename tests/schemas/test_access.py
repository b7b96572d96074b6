import pytest

from schemas.access import MINIMUM_ROLE, Permission, Principal, Role


def test_roles_are_cumulative() -> None:
    for permission, minimum in MINIMUM_ROLE.items():
        for role in Role:
            principal = Principal("user", "x", role, None if role is Role.PLATFORM_ADMIN else "acme")
            assert principal.may(permission) is (role.rank >= minimum.rank)


def test_a_viewer_reads_jobs_but_no_stack_traces_artifacts_or_admin() -> None:
    viewer = Principal("user", "v", Role.VIEWER, "acme")
    assert viewer.may(Permission.READ_JOBS)
    assert not any(
        viewer.may(p)
        for p in (
            Permission.READ_STACK_TRACES,
            Permission.READ_ARTIFACTS,
            Permission.MANAGE_TOKENS,
            Permission.ALL_TENANTS,
        )
    )


def test_only_a_platform_admin_has_no_tenant_and_sees_every_tenant() -> None:
    with pytest.raises(ValueError, match="only a platform admin"):
        Principal("user", "x", Role.TENANT_ADMIN, None)
    admin = Principal("user", "root", Role.PLATFORM_ADMIN, None)
    assert admin.sees_tenant("acme")
    assert admin.sees_tenant("globex")
    assert not Principal("token", "t", Role.TENANT_ADMIN, "acme").sees_tenant("globex")
