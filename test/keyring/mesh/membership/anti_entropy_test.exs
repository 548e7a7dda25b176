defmodule Keyring.Mesh.Membership.AntiEntropyTest do
  # Issue 8, item 10: pushes are best effort (a link may be down when a
  # change is made, and members do not relay pushes), so linked members
  # compare log heads every `anti_entropy_ms`. Topology of these tests: an
  # admin A, members B and C linked to each other, C cut off from A; A
  # removes M. Only B can tell C.
  use ExUnit.Case, async: false

  import Keyring.Test.{Eventually, Instances}

  alias Keyring.Ring

  @interval 300

  defp line(interval) do
    opts = [mesh: [anti_entropy_ms: interval]]
    [a, b, c, m] = for t <- [:a, :b, :c, :m], do: start_instance(t, opts)
    ring = ring_with(a, [b, c, m])

    eventually(fn ->
      Enum.all?([b, c, m], &match?({:ok, %{length: 4}}, Ring.info(ring, instance: &1)))
    end)

    # B and C link (each pushes its log on link-up: nothing new yet).
    {c_addr, _} = Ring.addresses(instance: c)
    :ok = Keyring.RPC.connect(id(c), c_addr, instance: b, keyring: ring)
    eventually(fn -> key(c) in connected(b, ring) end)

    # C is cut off from A (closed on purpose: nobody redials).
    Keyring.Native.mesh_disconnect(mesh(a), ring, key(c))
    Keyring.Native.mesh_disconnect(mesh(c), ring, key(a))
    eventually(fn -> key(c) not in connected(a, ring) and key(a) not in connected(c, ring) end)

    {a, b, c, m, ring}
  end

  defp members(ring, instance) do
    {:ok, info} = Ring.info(ring, instance: instance)
    Enum.map(info.members, & &1.key)
  end

  test "a member that missed a removal push converges through a third member within a few intervals" do
    {a, b, c, m, ring} = line(@interval)
    :ok = Keyring.Mesh.subscribe(instance: c)

    {:ok, _} = Ring.remove_member(ring, key(m), instance: a)
    removed = System.monotonic_time(:millisecond)
    eventually(fn -> key(m) not in members(ring, b) end, 5_000, "B has the removal (pushed)")

    # C never heard the push; B's heads differ from C's at the next exchange.
    eventually(fn -> key(m) not in members(ring, c) end, 10 * @interval, "C converges")
    took = System.monotonic_time(:millisecond) - removed
    assert_receive {:keyring_mesh, :membership, %{id: ^ring}}, 1_000

    {:ok, ia} = Ring.info(ring, instance: a)
    {:ok, ic} = Ring.info(ring, instance: c)
    assert ia.head == ic.head and ia.members == ic.members
    assert key(a) not in connected(c, ring), "C converged without a link to A"
    IO.puts("anti-entropy: C converged #{took} ms after the removal (interval #{@interval} ms)")

    # C now refuses the removed member.
    :ok = Keyring.expose(:ping, fn _, _ -> :pong end, instance: c, keyring: ring)
    {c_addr, _} = Ring.addresses(instance: c)

    assert {:error, _} =
             Keyring.call(id(c), :ping, nil, instance: m, keyring: ring, address: c_addr)

    assert {:ok, :pong} = Keyring.call(id(c), :ping, nil, instance: b, keyring: ring)
  end

  test "without anti-entropy (an interval of an hour) the same member stays behind" do
    {a, b, c, m, ring} = line(3_600_000)
    {:ok, _} = Ring.remove_member(ring, key(m), instance: a)
    eventually(fn -> key(m) not in members(ring, b) end, 5_000, "B has the removal (pushed)")
    Process.sleep(10 * @interval)
    assert key(m) in members(ring, c)
  end
end
