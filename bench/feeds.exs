# Feed replication over the real mesh: one author and 10 followers, 11
# instances in this VM linked by QUIC (protocol 5).
#
#   bin/bench feeds    (= MIX_ENV=prod mix run --no-start bench/feeds.exs)
#
# - Latency: the author appends 300 entries one after the other (10 ms
#   apart); for each, the time from the append call to the "keyring:feed"
#   entry event on each follower. Printed: p50/p95/p99 of every (entry,
#   follower) pair and p95 of "every follower has it" (the slowest of the
#   10 per entry). Goal: p95 < 50 ms.
# - Throughput: the author appends 2,000 entries as fast as it can (16
#   writers); entries/s until every follower has chained all of them, against
#   the author's own append rate in the same run (the ratio is what
#   replication costs).
#
# The machine is shared (2 cores for 11 instances): read the ratio; the
# absolutes move with the load, which is printed.

defmodule FeedsBench do
  @followers 10

  def load, do: File.read!("/proc/loadavg") |> String.split() |> hd()

  def pct(sorted, p),
    do: Enum.at(sorted, min(length(sorted) - 1, trunc(Float.ceil(length(sorted) * p)) - 1))

  def ms(us), do: :io_lib.format("~.1f", [us / 1000]) |> to_string()

  # A process per follower that reports every chained entry of `author`.
  def collector(instance, author, to) do
    spawn_link(fn ->
      Keyring.Feed.subscribe(instance: instance)
      send(to, {:subscribed, instance})
      loop(instance, author, to)
    end)
  end

  defp loop(instance, author, to) do
    receive do
      {:keyring_feed, :entry, %{author: ^author, seq: seq}} ->
        send(to, {:got, instance, seq, System.monotonic_time(:microsecond)})
    end

    loop(instance, author, to)
  end

  def run do
    tmp = Path.join(System.tmp_dir!(), "keyring-bench-feeds-#{System.os_time()}")
    IO.puts("load #{load()}")
    {:ok, _} = Keyring.start_link(name: Author, data_dir: "#{tmp}/author")
    {:ok, ring} = Keyring.Ring.create("feeds", instance: Author)
    author = Keyring.Identity.public_key(instance: Author)

    followers =
      for i <- 1..@followers do
        name = Module.concat(Follower, "#{i}")
        {:ok, _} = Keyring.start_link(name: name, data_dir: "#{tmp}/f#{i}")
        {:ok, invite} = Keyring.Ring.invite(ring, instance: Author)
        {:ok, ^ring} = Keyring.join(invite, instance: name)
        name
      end

    wait(fn -> length(Keyring.Ring.connected(ring, instance: Author)) == @followers end)
    for f <- followers, do: collector(f, author, self())
    for f <- followers, do: receive(do: ({:subscribed, ^f} -> :ok))

    # Latency, one entry at a time.
    n = 300

    samples =
      for seq <- 1..n do
        t0 = System.monotonic_time(:microsecond)
        {:ok, %{seq: ^seq}} = Keyring.Feed.append(ring, "entry #{seq}", instance: Author)
        times = for _ <- followers, do: receive(do: ({:got, _, ^seq, t} -> t - t0))
        Process.sleep(10)
        times
      end

    all = samples |> List.flatten() |> Enum.sort()
    slowest = samples |> Enum.map(&Enum.max/1) |> Enum.sort()

    IO.puts(
      "publish -> follower event, #{@followers} followers, #{n} entries: " <>
        "p50 #{ms(pct(all, 0.5))} ms, p95 #{ms(pct(all, 0.95))} ms, p99 #{ms(pct(all, 0.99))} ms; " <>
        "every follower: p95 #{ms(pct(slowest, 0.95))} ms (goal < 50 ms)"
    )

    # Throughput.
    m = 2000
    first = n + 1
    t0 = System.monotonic_time(:microsecond)

    1..m
    |> Task.async_stream(fn i -> Keyring.Feed.append(ring, "bulk #{i}", instance: Author) end,
      max_concurrency: 16,
      timeout: :infinity
    )
    |> Stream.run()

    appended = System.monotonic_time(:microsecond) - t0
    last = first + m - 1
    done = drain(MapSet.new(followers), last, t0)

    IO.puts(
      "throughput: author appends #{round(m / (appended / 1.0e6))} entries/s; " <>
        "all #{@followers} followers chained #{m} entries in #{ms(done)} ms = " <>
        "#{round(m / (done / 1.0e6))} entries/s each " <>
        "(ratio to the author's rate #{:io_lib.format("~.2f", [appended / done])})"
    )

    File.rm_rf(tmp)
  end

  # Waits until every follower reported `last`; the time since t0.
  defp drain(waiting, last, t0) do
    if MapSet.size(waiting) == 0 do
      System.monotonic_time(:microsecond) - t0
    else
      receive do
        {:got, f, ^last, _} -> drain(MapSet.delete(waiting, f), last, t0)
        {:got, _, _, _} -> drain(waiting, last, t0)
      after
        60_000 -> raise "followers did not catch up: #{inspect(MapSet.to_list(waiting))}"
      end
    end
  end

  defp wait(fun, tries \\ 500) do
    cond do
      fun.() -> :ok
      tries == 0 -> raise "timed out"
      true -> Process.sleep(20) && wait(fun, tries - 1)
    end
  end
end

FeedsBench.run()
